"""The iosignal worker: owns one KVM VM running the doorbell guest."""
