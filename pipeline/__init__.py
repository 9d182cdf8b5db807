"""Above the analysis core and the video engine: what sends a file to the image, video or audio pipeline
(`dispatch.analyze_path`). Front-ends (cli.py, api/, scan/, the dashboard) call it; the core never imports it."""
