"""keras_priors.layers"""
