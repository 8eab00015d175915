"""How results are shown to people: units, bars, advice; the terminal report."""
