"""SLA tracking, pure: the model, the observation log, the fold, the timers, and observations of events.

`model` (statuses, definitions, states) <- `log` (observations and their JSON) <- `fold` (the states a
log implies) and `timers`; `observations` turns events and Cases answers into observations; `records`
is what the SLA store keeps.
"""
