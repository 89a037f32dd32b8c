"""Reports: the HTML and JSON documents people read.

The data report, the tuning report, the model card and their shared HTML helpers. Renderers
only: they import nothing else from tunepipe, so any part may use them.
"""
