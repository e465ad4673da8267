"""The report stage: the findings a reader needs (`findings`), Markdown / HTML (`markdown`) and plots
(`plots`) from a run's leaderboard and diagnostics."""
