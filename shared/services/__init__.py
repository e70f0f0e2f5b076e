"""Use cases: export, writes, associations, tasks, activities, campaign, operations; and the composition root."""
