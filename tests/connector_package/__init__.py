"""A connector package outside the framework, as a user or a third party would publish one."""
