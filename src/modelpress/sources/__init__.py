"""Where models and data come from: zoo names, factories, saved files, built-in data sets."""
