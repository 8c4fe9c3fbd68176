"""Notifications, pure: which rules fire (`rules`), the case as a message shows it (`view`), the JSON
documents (`documents`), the message itself (`render`) and the enriched bus event (`bus`).

The rules, the message shapes and the guarantees are described once, in the README (Notifications).
"""
