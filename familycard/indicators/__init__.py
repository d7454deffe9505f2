"""Indicators: the fact vocabulary, the methodology loader and the indicator stage."""
