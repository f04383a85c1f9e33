"""Catalogue refresh: new products findable the day they list, without retraining (docs/catalogue.md).

    tables.py    the new rows (items + item_views in the world's schema), checked
    refresh.py   a new bundle version with them (generator: SIDs + fine-tune; cascade: index + item tables)
    evaluate.py  recall on new vs old items, by days since listing
    gate.py      the refresh gate
    config.py    the typed configs (no numpy at import: CLI defaults and step configs read them)
"""
