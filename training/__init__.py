"""handtrack training side: synthetic data, evaluation and (with torch) models, recipes and export."""
