"""The warehouse: engines that run the stages' SQL (DuckDB, Spark) and the snapshot store they write."""
