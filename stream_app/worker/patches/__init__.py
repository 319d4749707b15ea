"""The patches this project makes to faust-streaming: one module per patch, installed
through :mod:`.registry`, which checks the version and every signature first."""
