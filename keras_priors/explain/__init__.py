"""keras_priors.explain"""
