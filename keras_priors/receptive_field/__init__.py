"""keras_priors.receptive_field"""
