"""The canonical recipe, its converter, loaders and error paths."""
