"""Reports: the HTML and JSON documents people read.

The data report, the tuning report, the model card and their shared HTML helpers. Renderers
only: they import nothing else from tunepipe but the artifact names and keys
(``tunepipe.artifacts``), so any part may use them. The model card's keys are declared here
(``modelcard.CARD_*``) and imported by its writers and readers.
"""
