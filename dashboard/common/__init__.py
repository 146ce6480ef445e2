"""What every page shares: the metric catalog and formatting, the chart helper and its data,
time ranges, the freshness banner, outside text made safe, and the page widgets and guards."""
