"""SQL migrations NNN_name.sql, applied in filename order by `corral migrate`."""
