"""keras_priors.losses"""
