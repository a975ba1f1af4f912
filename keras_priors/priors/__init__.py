"""keras_priors.priors"""
