"""keras_priors.data"""
