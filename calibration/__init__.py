"""Camera intrinsics and extrinsics files and the tools that make them (filled by the streaming work)."""
