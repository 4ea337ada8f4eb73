"""A local emulator of Cloud Run, Secret Manager and Cloud Logging, on loopback."""
