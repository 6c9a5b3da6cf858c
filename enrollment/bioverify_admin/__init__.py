"""bioverify-admin: administration, calibration and evaluation tools. Everything that talks to
the service goes over gRPC, like any client."""
