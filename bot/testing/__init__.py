"""Local stand-ins for Slack: the fake Web API, signed request builders and the console."""
