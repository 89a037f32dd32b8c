"""Work the steps hand to Kubernetes: one client interface (:mod:`.api`), one job runner that
creates, watches, follows and cleans up (:mod:`.runner`), what launched pods inherit from the
step's own pod (:mod:`.pods`), and the launches themselves (:mod:`.tuning`, :mod:`.training`)."""
