"""The domain core: models, ids, settings and the one store. The Lambda edge and the browser host import it."""
