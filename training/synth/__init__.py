"""Synthetic depth: pose prior, scenes, sensor noise models and the shard writer/reader."""
