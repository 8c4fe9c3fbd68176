"""casewatch's CDK app: one stack (`Casewatch`) composed of one construct per concern."""
