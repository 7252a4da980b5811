/** Fixtures the lab suites share. */

/** A one-pod application with one replicated volume (the lab's storage class replicates it). */
export function ledgerObjects(ns: string) {
  const labels = { 'app.kubernetes.io/part-of': ns, 'app.kubernetes.io/name': 'ledger' };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'ledger', namespace: ns, labels },
      spec: {
        replicas: 1,
        serviceName: 'ledger',
        selector: { matchLabels: { 'app.kubernetes.io/name': 'ledger' } },
        template: {
          metadata: { labels },
          spec: {
            tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
            containers: [
              { name: 'ledger', image: 'postgres:17', volumeMounts: [{ name: 'data', mountPath: '/data' }] },
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data', labels },
            spec: {
              accessModes: ['ReadWriteOnce'],
              storageClassName: 'sim-replicated',
              resources: { requests: { storage: '1Gi' } },
            },
          },
        ],
      },
    },
  ];
}
