"""HTML evidence report from the DuckDB warehouse that source-circleci-ccm syncs into (`circleci-ccm-report`)."""
