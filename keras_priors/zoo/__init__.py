"""keras_priors.zoo"""
