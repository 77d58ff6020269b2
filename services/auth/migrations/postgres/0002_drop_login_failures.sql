-- The password throttle moved to the user service, beside the hashes it
-- protects (so ChangePassword shares it, and both login names of one user
-- count as one account).
DROP TABLE login_failures;
