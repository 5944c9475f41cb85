"""MindFormers glue: config rendering, the CPU training wrapper, model building."""
