"""The report stage: the findings a reader needs (`findings`), Markdown / HTML (`markdown`), the quality-vs-latency
chart shared with the serving page (`chart`), PNG figures (`plots`) and one way of writing numbers (`formats`), from a
run's leaderboard and diagnostics."""
