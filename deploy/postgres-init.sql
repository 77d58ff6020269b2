-- One database per service (each service owns its data and migrations), created at the first start
-- of the postgres container (docker-entrypoint-initdb.d).
CREATE DATABASE suite_user OWNER suite;
CREATE DATABASE suite_auth OWNER suite;
