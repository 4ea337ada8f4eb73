"""The emulator fixtures (`emulator`, `emulator_dir`, `project`) live in tests/conftest.py."""
