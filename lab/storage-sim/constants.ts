/** Names the simulator shares with the lab's manifests and with Pivot's replication provider. */

/** The CSI driver name the simulated array answers to (CSIDriver, StorageClass provisioner, PV csi.driver). */
export const SIM_DRIVER = 'sim.csi.pivot.dev';

/**
 * csi-addons has no spec field for a forced promotion (its controller forces on its own after a
 * failed attempt); the lab's array forces only when the VolumeReplication carries this annotation,
 * so that a test can tell a planned promotion from an unplanned one.
 */
export const FORCE_PROMOTION_ANNOTATION = 'replication.pivot.dev/force-promotion';
