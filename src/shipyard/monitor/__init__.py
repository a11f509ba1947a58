"""Monitoring: is the model still seeing the world it was trained on, and still right?

``drift`` compares a current window of the prediction log with a reference (data
drift, prediction drift), ``performance`` follows quality over time from feedback and
estimates it without labels, ``quality`` checks live traffic against the data gate's
schema, and ``report`` renders drift as HTML and Markdown. Import the module you
need: importing this package loads nothing heavy.
"""
