"""Lead scoring: one versioned model both teams sign, real-time updates, exact decay, rescoring.

Modules: `models` (tables), `rules` (the spec of a version, fit rules and their SQL), `engagement`
(anchored decay), `services` (versions, sign-off, real-time update, rescore), `sql` (set-based
rescore), `selectors` (explanation), `receivers` (signals), `tasks` (Celery).
"""
