"""Ways of showing results to a person: terminal tables now, HTML reports and traces later."""
