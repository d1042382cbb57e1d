"""What a project plugin implements: the project under upgrade test and its deployment."""
