#!/usr/bin/env bash
# Provisions the lab's tools: builds each one once from its Go module (nothing can be downloaded
# from a website on our machines), caches it outside the repository keyed by version, and links
# the result into one bin directory that the lab reads. A binary already on PATH is used instead
# when its version matches the pin. Idempotent: a second run only checks and prints.
#
# Usage: lab/tools/provision.sh [tool...]
#        tools: kube etcd temporal kwok redis temporal-test-server helm kubeconform kube-schemas
#        (default: all)
# The lab itself needs the first five (`lab up` asks for those only); temporal-test-server is
# Temporal's time-skipping test server, which the long-wait tests run (Java and Maven, not Go);
# helm, kubeconform and kube-schemas (Kubernetes' JSON schemas for kubeconform, generated from the
# OpenAPI document in the k8s.io/kubernetes module) check the Helm chart (test/unit/chart.test.ts).
# Env:   PIVOT_TOOLS_DIR (default ~/.cache/pivot/tools)
# Prints the bin directory on stdout; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
TOOLS=${PIVOT_TOOLS_DIR:-$HOME/.cache/pivot/tools}
BIN="$TOOLS/bin"
mkdir -p "$BIN" "$TOOLS/logs"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

log() { printf '[provision %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Runs a long command with its output in a log file, reporting progress every 20 s so that a
# first build (many minutes) never looks hung.
run_logged() {
  local label=$1 logfile=$2; shift 2
  local start=$SECONDS last=$SECONDS pid
  log "$label: started (log: $logfile)"
  "$@" >"$logfile" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( SECONDS - last >= 20 )); then
      last=$SECONDS
      log "$label: still working, $((SECONDS - start)) s, $(wc -l <"$logfile") log lines"
    fi
  done
  if ! wait "$pid"; then
    log "$label: FAILED after $((SECONDS - start)) s; last lines of $logfile:"
    tail -n 40 "$logfile" >&2
    return 1
  fi
  log "$label: done in $((SECONDS - start)) s"
}

# link NAME PATH: make PATH the lab's NAME.
link() { ln -sfn "$2" "$BIN/$1"; }

# outside_bin NAME: NAME's path on PATH, ignoring our own bin directory (whose links would
# otherwise point at themselves).
outside_bin() {
  local dir
  local IFS=:
  for dir in $PATH; do
    [[ $dir == "$BIN" || -z $dir ]] && continue
    [[ -x $dir/$1 ]] && { echo "$dir/$1"; return 0; }
  done
  return 1
}

# on_path NAME VERSION_REGEX [VERSION_ARGS...]: succeeds (and links it) when NAME on PATH reports a
# matching version (asked with --version unless other arguments are given).
on_path() {
  local name=$1 want=$2 found
  shift 2
  (($#)) || set -- --version
  found=$(outside_bin "$name") || return 1
  "$found" "$@" 2>/dev/null | grep -Eq "$want" || return 1
  link "$name" "$found"
  log "$name: using $found from PATH"
}

provision_kube() {
  local dir="$TOOLS/kubernetes-$KUBE_VERSION" names=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  local have=1 n
  # Binaries already on PATH at the pinned version (an official download, say) are used as they are.
  if on_path kube-apiserver "Kubernetes $KUBE_VERSION\$" && on_path kube-controller-manager "Kubernetes $KUBE_VERSION\$" &&
    on_path kube-scheduler "Kubernetes $KUBE_VERSION\$" && on_path kubectl "Client Version: $KUBE_VERSION\$" version --client; then
    return 0
  fi
  for n in "${names[@]}"; do [[ -x $dir/bin/$n ]] || have=0; done
  if (( ! have )); then
    mkdir -p "$dir/src" "$dir/bin"
    # A helper module that requires k8s.io/kubernetes and pins every staging module it replaces
    # with a relative path (those replaces are ignored outside its own repository).
    local gomod
    gomod=$(cd "$dir/src" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    [[ -f $gomod ]] || die "could not download k8s.io/kubernetes@$KUBE_VERSION's go.mod"
    {
      echo "module pivot.local/kube-tools"
      echo
      echo "go 1.24"
      echo
      echo "godebug default=go1.24"
      echo
      echo "require k8s.io/kubernetes $KUBE_VERSION"
      echo
      grep -Eo '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" |
        awk -v v="$KUBE_STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}'
    } >"$dir/src/go.mod"
    local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
    local ldflags="-s -w"
    local pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    local targets=()
    for n in "${names[@]}"; do targets+=("k8s.io/kubernetes/cmd/$n"); done
    log "kubernetes $KUBE_VERSION: building ${names[*]} from the Go module (first build: 15-40 min on 2 cores)"
    run_logged "kubernetes $KUBE_VERSION" "$TOOLS/logs/kubernetes-$KUBE_VERSION.log" \
      bash -c "cd '$dir/src' && go build -mod=mod -v -ldflags '$ldflags' -o '$dir/bin/' ${targets[*]}"
  fi
  for n in "${names[@]}"; do link "$n" "$dir/bin/$n"; done
}

provision_etcd() {
  on_path etcd "Version: ${ETCD_VERSION#v}\$" && return 0
  local dir="$TOOLS/etcd-$ETCD_VERSION"
  if [[ ! -x $dir/bin/etcd ]]; then
    mkdir -p "$dir/src" "$dir/bin"
    # etcd's server module replaces its siblings with relative paths, so `go install` refuses it;
    # a helper module that requires it builds fine.
    printf 'module pivot.local/etcd-tools\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$dir/src/go.mod"
    run_logged "etcd $ETCD_VERSION" "$TOOLS/logs/etcd-$ETCD_VERSION.log" \
      bash -c "cd '$dir/src' && go build -mod=mod -v -ldflags '-s -w' -o '$dir/bin/etcd' go.etcd.io/etcd/server/v3"
  fi
  link etcd "$dir/bin/etcd"
}

# go_install NAME MODULE/PATH VERSION [LDFLAGS]: `go install` into a versioned cache directory
# (LDFLAGS: more linker flags, such as the -X a release build sets to report its version).
go_install() {
  local name=$1 pkg=$2 version=$3 dir="$TOOLS/$1-$3" ldflags="-s -w ${4:-}"
  if [[ ! -x $dir/bin/$name ]]; then
    mkdir -p "$dir/bin"
    run_logged "$name $version" "$TOOLS/logs/$name-$version.log" \
      env GOBIN="$dir/bin" go install -v -ldflags "$ldflags" "$pkg@$version"
  fi
  link "$name" "$dir/bin/$name"
}

provision_temporal() {
  on_path temporal "temporal version ${TEMPORAL_CLI_VERSION#v} " && return 0
  go_install temporal github.com/temporalio/cli/cmd/temporal "$TEMPORAL_CLI_VERSION"
}

provision_kwok() {
  if ! { on_path kwok "$KWOK_VERSION" && on_path kwokctl "$KWOK_VERSION"; }; then
    go_install kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
    go_install kwokctl sigs.k8s.io/kwok/cmd/kwokctl "$KWOK_VERSION"
  fi
}

provision_helm() {
  on_path helm "^$HELM_VERSION(\\+|\$)" version --short && return 0
  local x=""
  if [[ ! -x $TOOLS/helm-$HELM_VERSION/bin/helm ]]; then
    # What helm's Makefile sets for a release: its version, and the Kubernetes version it assumes
    # (`.Capabilities.KubeVersion`, deprecation checks) from the client-go it is built with.
    local gomod minor
    gomod=$(cd "$TOOLS" && go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    [[ -f $gomod ]] || die "could not download helm.sh/helm/v3@$HELM_VERSION's go.mod"
    minor=$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")
    [[ -n $minor ]] || die "no k8s.io/client-go in helm.sh/helm/v3@$HELM_VERSION's go.mod"
    x="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    x+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
    x+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  fi
  go_install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "$x"
}

provision_kubeconform() {
  on_path kubeconform "^v?${KUBECONFORM_VERSION#v}\$" -v && return 0
  go_install kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" \
    "-X main.version=$KUBECONFORM_VERSION"
}

# kubeconform's schemas, which it cannot download here: written by kube-schemas.mjs from the
# OpenAPI document of the k8s.io/kubernetes module at the lab's version, into a directory keyed by
# that version and by the generator's own hash (a change to the generator writes them again).
# Linked as bin/kube-schemas: kubeconform -schema-location 'bin/kube-schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json'
provision_kube_schemas() {
  command -v node >/dev/null || die "Node is needed to write kubeconform's schemas"
  local hash dir swagger moddir
  hash=$(sha256sum "$here/kube-schemas.mjs" | cut -c1-12)
  dir="$TOOLS/kube-schemas-$KUBE_VERSION-$hash"
  if [[ ! -f $dir/.complete ]]; then
    moddir=$(cd "$TOOLS" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    swagger="$moddir/api/openapi-spec/swagger.json"
    [[ -f $swagger ]] || die "no api/openapi-spec/swagger.json in k8s.io/kubernetes@$KUBE_VERSION"
    rm -rf "$dir"
    run_logged "kube-schemas $KUBE_VERSION" "$TOOLS/logs/kube-schemas-$KUBE_VERSION.log" \
      node "$here/kube-schemas.mjs" "$swagger" "$dir"
    touch "$dir/.complete"
  fi
  link kube-schemas "$dir"
}

provision_redis() {
  if ! outside_bin redis-server >/dev/null; then
    (( EUID == 0 )) || die "redis-server is missing: install Debian's redis-server package (needs root)"
    log "redis-server: installing Debian's package"
    run_logged "apt-get install redis-server" "$TOOLS/logs/apt-redis.log" \
      bash -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q --no-install-recommends redis-server redis-tools'
  fi
  link redis-server "$(outside_bin redis-server)"
  if outside_bin redis-cli >/dev/null; then link redis-cli "$(outside_bin redis-cli)"; fi
  return 0
}

# Temporal's time-skipping test server (Java): the Temporal SDKs download a native build from
# GitHub, which our machines cannot reach, so its Maven artifact is resolved through the Maven
# repository instead. A throwaway pom in the cache directory depends on it; Maven resolves the
# classpath (jars in ~/.m2) and a wrapper runs the server's main class with it. The SDK starts the
# wrapper with the port as its first argument.
provision_temporal_test_server() {
  local version=$TEMPORAL_TEST_SERVER_VERSION
  local dir="$TOOLS/temporal-test-server-$version"
  local wrapper="$dir/bin/temporal-test-server" classpath="$dir/classpath.txt"
  if [[ ! -x $wrapper ]] || ! classpath_present "$classpath"; then
    command -v java >/dev/null || die "Java (17 or newer) is needed to run Temporal's test server"
    command -v mvn >/dev/null || die "Maven is needed to resolve Temporal's test server"
    mkdir -p "$dir/bin"
    cat >"$dir/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>pivot.local</groupId>
  <artifactId>temporal-test-server-tools</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>io.temporal</groupId>
      <artifactId>temporal-test-server</artifactId>
      <version>$version</version>
    </dependency>
  </dependencies>
</project>
POM
    run_logged "temporal-test-server $version" "$TOOLS/logs/temporal-test-server-$version.log" \
      mvn -B -f "$dir/pom.xml" "org.apache.maven.plugins:maven-dependency-plugin:$MAVEN_DEPENDENCY_PLUGIN_VERSION:build-classpath" \
      -Dmdep.includeScope=runtime -Dmdep.outputFile="$classpath"
    classpath_present "$classpath" || die "Maven resolved no usable classpath for temporal-test-server $version"
    printf '#!/bin/sh\nexec java -cp "%s" io.temporal.testserver.TestServer "$@"\n' "$(<"$classpath")" >"$wrapper"
    chmod +x "$wrapper"
  fi
  link temporal-test-server "$wrapper"
}

# classpath_present FILE: FILE lists a classpath whose every jar is still there (a cleared ~/.m2
# means resolving again).
classpath_present() {
  local jar
  [[ -s $1 ]] || return 1
  local IFS=:
  for jar in $(<"$1"); do [[ -f $jar ]] || return 1; done
}

wanted=("$@")
(( ${#wanted[@]} )) || wanted=(redis kwok temporal etcd kube temporal-test-server helm kubeconform kube-schemas)
for tool in "${wanted[@]}"; do
  case $tool in
    kube|etcd|temporal|kwok|helm|kubeconform|kube-schemas)
      command -v go >/dev/null || die "Go is needed to build the lab's tools (https://go.dev/doc/install)"
      "provision_${tool//-/_}" ;;
    redis) provision_redis ;;
    temporal-test-server) provision_temporal_test_server ;;
    *) die "unknown tool '$tool' (known: kube etcd temporal kwok redis temporal-test-server helm kubeconform kube-schemas)" ;;
  esac
done
log "all tools ready in $BIN"
echo "$BIN"
