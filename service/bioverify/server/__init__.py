"""The gRPC shell: servicers, error mapping, health, reflection, lifecycle."""
