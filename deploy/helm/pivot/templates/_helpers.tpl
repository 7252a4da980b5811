{{/*
Names, labels and the pieces every Pivot pod shares: the configuration (rendered from the values,
one variant for the site workers and one for the readers: the API and the control worker), the
projected volume of its files and secrets, and the container's image and security.
*/}}

{{- define "pivot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pivot.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Cluster-scoped names carry the namespace: two releases of the same name must not collide. */}}
{{- define "pivot.clusterName" -}}
{{- printf "%s-%s-%s" .root.Release.Namespace (include "pivot.fullname" .root) .suffix -}}
{{- end -}}

{{- define "pivot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pivot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pivot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "pivot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pivot
{{- end -}}

{{/* dict root, component[, site]: the selector of one process kind (one site's worker). */}}
{{- define "pivot.componentSelector" -}}
{{ include "pivot.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- with .site }}
pivot.dev/site: {{ . }}
{{- end }}
{{- end -}}

{{- define "pivot.componentLabels" -}}
{{ include "pivot.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- with .site }}
pivot.dev/site: {{ . }}
{{- end }}
{{- end -}}

{{- define "pivot.image" -}}
{{- $i := .Values.image -}}
{{- if $i.digest -}}
{{- printf "%s@%s" $i.repository $i.digest -}}
{{- else -}}
{{- printf "%s:%s" $i.repository (default .Chart.AppVersion $i.tag) -}}
{{- end -}}
{{- end -}}

{{- define "pivot.serviceAccountName" -}}
{{- printf "%s-%s" (include "pivot.fullname" .root) .component -}}
{{- end -}}

{{/* Where every process finds its files (the projected volume) and the runbooks. */}}
{{- define "pivot.dir" -}}/etc/pivot{{- end -}}
{{- define "pivot.runbooksDir" -}}/etc/pivot-runbooks{{- end -}}

{{/* dict site, reader: the Secret holding the site's kubeconfig for that identity, as YAML ({} in-cluster). */}}
{{- define "pivot.siteSecret" -}}
{{- $c := .site.credentials -}}
{{- if $c.inCluster -}}
{}
{{- else if and .reader $c.readerKubeconfigSecret -}}
{{- toYaml $c.readerKubeconfigSecret -}}
{{- else -}}
{{- toYaml $c.kubeconfigSecret -}}
{{- end -}}
{{- end -}}

{{/* dict tls, dir: a TLS block of the values as the configuration's TLS files. */}}
{{- define "pivot.tlsFiles" -}}
{{- $out := dict -}}
{{- if .tls.ca.secretName -}}{{- $_ := set $out "caFile" (printf "%s/ca.crt" .dir) -}}{{- end -}}
{{- if .tls.client.secretName -}}
{{- $_ := set $out "certFile" (printf "%s/tls.crt" .dir) -}}
{{- $_ := set $out "keyFile" (printf "%s/tls.key" .dir) -}}
{{- end -}}
{{- if .tls.serverName -}}{{- $_ := set $out "serverName" .tls.serverName -}}{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* dict auth, name: an alert hook's authentication in the configuration. */}}
{{- define "pivot.hookAuth" -}}
{{- $out := omit .auth "hmac" -}}
{{- with .auth.hmac -}}
{{- $hmac := dict "secretFile" (printf "%s/hooks/%s-hmac" (include "pivot.dir" .) $.name) -}}
{{- with .timestampHeader -}}{{- $_ := set $hmac "timestampHeader" . -}}{{- end -}}
{{- with .maxSkewSeconds -}}{{- $_ := set $hmac "maxSkewSeconds" . -}}{{- end -}}
{{- $_ := set $out "hmac" $hmac -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
dict root, reader: the Pivot configuration (docs/config.md). A site of this cluster is reached as
the pod's ServiceAccount (inCluster); another, by site workers (reader false) with its
kubeconfigSecret, by the API and the control worker (reader true) with its readerKubeconfigSecret
when there is one. Paths point into the projected volume.
*/}}
{{- define "pivot.config" -}}
{{- $v := .root.Values -}}
{{- $dir := include "pivot.dir" . -}}
{{- $sites := list -}}
{{- range $v.sites -}}
{{- $site := dict "name" .name "clientCidrs" .clientCidrs -}}
{{- if .credentials.inCluster -}}
{{- $_ := set $site "inCluster" true -}}
{{- else -}}
{{- $_ := set $site "kubeconfig" (printf "%s/sites/%s/kubeconfig" $dir .name) -}}
{{- $secret := include "pivot.siteSecret" (dict "site" . "reader" $.reader) | fromYaml -}}
{{- with $secret.context -}}{{- $_ := set $site "context" . -}}{{- end -}}
{{- end -}}
{{- with .region -}}{{- $_ := set $site "region" . -}}{{- end -}}
{{- with .networkFence -}}{{- $_ := set $site "networkFence" . -}}{{- end -}}
{{- $sites = append $sites $site -}}
{{- end -}}
{{- $temporal := dict "address" $v.temporal.address "namespace" $v.temporal.namespace -}}
{{- if $v.temporal.tls.enabled -}}
{{- $_ := set $temporal "tls" (include "pivot.tlsFiles" (dict "tls" $v.temporal.tls "dir" (printf "%s/temporal" $dir)) | fromYaml) -}}
{{- end -}}
{{- if $v.temporal.apiKey.secretName -}}
{{- $_ := set $temporal "apiKeyFile" (printf "%s/temporal/api-key" $dir) -}}
{{- end -}}
{{- $w := $v.witness -}}
{{- $witness := dict -}}
{{- if $w.sentinel.enabled -}}
{{- $sentinel := dict "masterName" $w.sentinel.masterName "sentinels" $w.sentinel.sentinels -}}
{{- if $w.sentinel.passwordSecret.name -}}
{{- $_ := set $sentinel "passwordFile" (printf "%s/witness/sentinel-password" $dir) -}}
{{- end -}}
{{- if not (kindIs "invalid" $w.sentinel.waitForReplicas) -}}{{- $_ := set $sentinel "waitForReplicas" $w.sentinel.waitForReplicas -}}{{- end -}}
{{- if not (kindIs "invalid" $w.sentinel.waitTimeoutMs) -}}{{- $_ := set $sentinel "waitTimeoutMs" $w.sentinel.waitTimeoutMs -}}{{- end -}}
{{- $_ := set $witness "sentinel" $sentinel -}}
{{- else -}}
{{- $_ := set $witness "redisUrl" $w.redisUrl -}}
{{- end -}}
{{- if $w.passwordSecret.name -}}
{{- $_ := set $witness "passwordFile" (printf "%s/witness/password" $dir) -}}
{{- end -}}
{{- if $w.tls.enabled -}}
{{- $_ := set $witness "tls" (include "pivot.tlsFiles" (dict "tls" $w.tls "dir" (printf "%s/witness" $dir)) | fromYaml) -}}
{{- end -}}
{{- $a := $v.api -}}
{{- $api := dict "listen" (printf "0.0.0.0:%d" (int $a.port)) "twoPersonRule" $a.twoPersonRule -}}
{{- with $a.tokens -}}{{- $_ := set $api "tokens" . -}}{{- end -}}
{{- if not (kindIs "invalid" $a.rateLimitPerMinute) -}}{{- $_ := set $api "rateLimitPerMinute" $a.rateLimitPerMinute -}}{{- end -}}
{{- if not (kindIs "invalid" $a.unauthenticatedRateLimitPerMinute) -}}{{- $_ := set $api "unauthenticatedRateLimitPerMinute" $a.unauthenticatedRateLimitPerMinute -}}{{- end -}}
{{- with $a.oidc -}}
{{- $oidc := omit . "jwksConfigMap" -}}
{{- if .jwksConfigMap -}}{{- $_ := set $oidc "jwksFile" (printf "%s/oidc/jwks.json" $dir) -}}{{- end -}}
{{- $_ := set $api "oidc" $oidc -}}
{{- end -}}
{{- with $a.board -}}{{- $_ := set $api "board" . -}}{{- end -}}
{{- if $a.tls.enabled -}}
{{- $_ := set $api "tls" (dict "certFile" (printf "%s/api/tls.crt" $dir) "keyFile" (printf "%s/api/tls.key" $dir)) -}}
{{- end -}}
{{- $config := dict "apiVersion" "pivot.dev/v1alpha1" "kind" "PivotConfig" "sites" $sites "temporal" $temporal "witness" $witness "api" $api "runbooks" (dict "dir" (include "pivot.runbooksDir" .)) -}}
{{- with $v.storageClassMap -}}{{- $_ := set $config "storageClassMap" . -}}{{- end -}}
{{- $drills := dict -}}
{{- range $k, $x := $v.drills -}}{{- if not (kindIs "invalid" $x) -}}{{- $_ := set $drills $k $x -}}{{- end -}}{{- end -}}
{{- with $drills -}}{{- $_ := set $config "drills" . -}}{{- end -}}
{{- $al := $v.alerts -}}
{{- if or $al.rules $al.grafana $al.alertmanager -}}
{{- $alerts := dict "rules" (default list $al.rules) -}}
{{- with $al.grafana -}}{{- $_ := set $alerts "grafana" (include "pivot.hookAuth" (dict "auth" . "name" "grafana") | fromYaml) -}}{{- end -}}
{{- with $al.alertmanager -}}{{- $_ := set $alerts "alertmanager" (include "pivot.hookAuth" (dict "auth" . "name" "alertmanager") | fromYaml) -}}{{- end -}}
{{- $_ := set $config "alerts" $alerts -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* dict root, component[, site]: the sites a pod reaches (a site worker: its own; the others: all). */}}
{{- define "pivot.podSites" -}}
{{- $out := list -}}
{{- range .root.Values.sites -}}
{{- if or (ne $.component "site-worker") (eq .name $.site) -}}{{- $out = append $out . -}}{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* dict root, component[, site]: "true" when the pod reaches a site through its own ServiceAccount. */}}
{{- define "pivot.needsToken" -}}
{{- $in := false -}}
{{- range (include "pivot.podSites" . | fromYamlArray) -}}{{- if .credentials.inCluster -}}{{- $in = true -}}{{- end -}}{{- end -}}
{{- $in -}}
{{- end -}}

{{/* dict secretName, items (list of key/path): one source of the projected volume. */}}
{{- define "pivot.secretSource" -}}
- secret:
    name: {{ .secretName }}
    items:
      {{- range .items }}
      - key: {{ index . 0 | quote }}
        path: {{ index . 1 }}
      {{- end }}
{{- end -}}

{{/* dict root, component[, site]: the pod's volumes. */}}
{{- define "pivot.volumes" -}}
{{- $v := .root.Values -}}
{{- $reader := ne .component "site-worker" -}}
{{- $sites := include "pivot.podSites" . | fromYamlArray -}}
- name: pivot
  projected:
    # 0440: readable by the pod's group (fsGroup) only
    defaultMode: 288
    sources:
      - configMap:
          name: {{ include "pivot.fullname" .root }}-config
          items:
            - key: {{ ternary "reader.yaml" "worker.yaml" $reader }}
              path: pivot.yaml
      {{- range $sites }}
      {{- if not .credentials.inCluster }}
      {{- $s := include "pivot.siteSecret" (dict "site" . "reader" $reader) | fromYaml }}
      {{- include "pivot.secretSource" (dict "secretName" $s.name "items" (list (list $s.key (printf "sites/%s/kubeconfig" .name)))) | nindent 6 }}
      {{- end }}
      {{- end }}
      {{- range $name, $c := dict "temporal" $v.temporal "witness" $v.witness }}
      {{- if $c.tls.enabled }}
      {{- with $c.tls.ca.secretName }}
      {{- include "pivot.secretSource" (dict "secretName" . "items" (list (list $c.tls.ca.key (printf "%s/ca.crt" $name)))) | nindent 6 }}
      {{- end }}
      {{- with $c.tls.client.secretName }}
      {{- include "pivot.secretSource" (dict "secretName" . "items" (list (list $c.tls.client.certKey (printf "%s/tls.crt" $name)) (list $c.tls.client.keyKey (printf "%s/tls.key" $name)))) | nindent 6 }}
      {{- end }}
      {{- end }}
      {{- end }}
      {{- with $v.temporal.apiKey.secretName }}
      {{- include "pivot.secretSource" (dict "secretName" . "items" (list (list $v.temporal.apiKey.key "temporal/api-key"))) | nindent 6 }}
      {{- end }}
      {{- with $v.witness.passwordSecret.name }}
      {{- include "pivot.secretSource" (dict "secretName" . "items" (list (list $v.witness.passwordSecret.key "witness/password"))) | nindent 6 }}
      {{- end }}
      {{- if and $v.witness.sentinel.enabled $v.witness.sentinel.passwordSecret.name }}
      {{- include "pivot.secretSource" (dict "secretName" $v.witness.sentinel.passwordSecret.name "items" (list (list $v.witness.sentinel.passwordSecret.key "witness/sentinel-password"))) | nindent 6 }}
      {{- end }}
      {{- if eq .component "api" }}
      {{- if $v.api.tls.enabled }}
      {{- include "pivot.secretSource" (dict "secretName" $v.api.tls.secretName "items" (list (list $v.api.tls.certKey "api/tls.crt") (list $v.api.tls.keyKey "api/tls.key"))) | nindent 6 }}
      {{- end }}
      {{- range $hook := list "grafana" "alertmanager" }}
      {{- with (index $v.alerts $hook).hmac }}
      {{- include "pivot.secretSource" (dict "secretName" .secretName "items" (list (list .key (printf "hooks/%s-hmac" $hook)))) | nindent 6 }}
      {{- end }}
      {{- end }}
      {{- with $v.api.oidc.jwksConfigMap }}
      - configMap:
          name: {{ .name }}
          items:
            - key: {{ .key | quote }}
              path: oidc/jwks.json
      {{- end }}
      {{- end }}
- name: runbooks
  configMap:
    name: {{ default (printf "%s-runbooks" (include "pivot.fullname" .root)) $v.runbooks.existingConfigMap }}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "pivot.volumeMounts" -}}
- name: pivot
  mountPath: {{ include "pivot.dir" . }}
  readOnly: true
- name: runbooks
  mountPath: {{ include "pivot.runbooksDir" . }}
  readOnly: true
# the one writable place (the root file system is read-only)
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* dict root, component[, site]: what every Pivot pod's spec starts with. */}}
{{- define "pivot.podCommon" -}}
{{- $v := .root.Values -}}
serviceAccountName: {{ include "pivot.serviceAccountName" . }}
# Only a pod that reaches its own cluster's API carries a token for it.
automountServiceAccountToken: {{ include "pivot.needsToken" . }}
securityContext:
  {{- toYaml $v.podSecurityContext | nindent 2 }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  {{- include "pivot.volumes" . | nindent 2 }}
{{- end -}}

{{/*
dict root, component[, site], scheduling (the component's values): nodeSelector, tolerations,
affinity. Without an affinity of the user's, replicas of one process prefer different nodes and zones.
*/}}
{{- define "pivot.scheduling" -}}
{{- with .scheduling.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .scheduling.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .scheduling.affinity }}
affinity:
  {{- toYaml .scheduling.affinity | nindent 2 }}
{{- else if gt (int (default 1 .scheduling.replicas)) 1 }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      {{- range $weight, $key := dict "100" "kubernetes.io/hostname" "50" "topology.kubernetes.io/zone" }}
      - weight: {{ $weight }}
        podAffinityTerm:
          topologyKey: {{ $key }}
          labelSelector:
            matchLabels:
              {{- include "pivot.componentSelector" $ | nindent 14 }}
      {{- end }}
{{- end }}
{{- end -}}

{{/* dict root, component: the container fields every Pivot container shares. */}}
{{- define "pivot.containerCommon" -}}
{{- $v := .root.Values -}}
image: {{ include "pivot.image" .root | quote }}
imagePullPolicy: {{ $v.image.pullPolicy }}
{{- with $v.image.command }}
command: {{ toJson . }}
{{- end }}
{{- with $v.image.workingDir }}
workingDir: {{ . }}
{{- end }}
securityContext:
  {{- toYaml $v.securityContext | nindent 2 }}
{{- with $v.extraEnv }}
env:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumeMounts:
  {{- include "pivot.volumeMounts" . | nindent 2 }}
{{- end -}}

{{/* The pod template's annotations: a new configuration (or chart-made runbook) rolls the pods. */}}
{{- define "pivot.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The port of a host:port (or a URL's), or the default given. */}}
{{- define "pivot.port" -}}
{{- $m := regexFind ":[0-9]+" (regexReplaceAll "^[a-z]+://" .address "") -}}
{{- if $m -}}{{- trimPrefix ":" $m -}}{{- else -}}{{- .default -}}{{- end -}}
{{- end -}}
