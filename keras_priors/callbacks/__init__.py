"""keras_priors.callbacks"""
