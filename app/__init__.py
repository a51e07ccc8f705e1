"""User-facing entry points: the `handtrack` CLI and (later) the GUI and stream outputs."""
