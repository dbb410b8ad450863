"""The continuous deployer: desired state, ops repositories, rendering, reconciliation, health."""
