-- The schema `db.create_all()` made on postgresql before migrations existed (models.py at
-- commit 87bbb72), frozen for tests/test_migrations.py: a database like this is adopted.

CREATE TABLE calls (
	sid VARCHAR(34) NOT NULL, 
	account_sid VARCHAR(34), 
	from_number VARCHAR(255), 
	to_number VARCHAR(255), 
	direction VARCHAR(32), 
	caller_name VARCHAR(255), 
	forwarded_from VARCHAR(255), 
	parent_call_sid VARCHAR(34), 
	status VARCHAR(16) NOT NULL, 
	status_rank INTEGER NOT NULL, 
	duration INTEGER, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (sid)
);

CREATE INDEX ix_calls_created_at_sid ON calls (created_at, sid);

CREATE INDEX ix_calls_from_number ON calls (from_number);

CREATE INDEX ix_calls_parent_call_sid ON calls (parent_call_sid);

CREATE INDEX ix_calls_status_created_at_sid ON calls (status, created_at, sid);

CREATE INDEX ix_calls_to_number ON calls (to_number);

CREATE TABLE call_events (
	id SERIAL NOT NULL, 
	call_sid VARCHAR(34) NOT NULL, 
	dedupe_key VARCHAR(64) NOT NULL, 
	source VARCHAR(16) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	sequence_number INTEGER, 
	timestamp TIMESTAMP WITHOUT TIME ZONE, 
	call_duration INTEGER, 
	sip_response_code VARCHAR(8), 
	params TEXT NOT NULL, 
	received_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_call_events_dedupe UNIQUE (call_sid, dedupe_key), 
	FOREIGN KEY(call_sid) REFERENCES calls (sid)
);

CREATE INDEX ix_call_events_call_sid ON call_events (call_sid);

CREATE TABLE operator_actions (
	id SERIAL NOT NULL, 
	call_sid VARCHAR(34), 
	operator VARCHAR(255) NOT NULL, 
	action VARCHAR(32) NOT NULL, 
	params TEXT NOT NULL, 
	ok BOOLEAN NOT NULL, 
	result TEXT NOT NULL, 
	error_code INTEGER, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(call_sid) REFERENCES calls (sid)
);

CREATE INDEX ix_operator_actions_call_sid ON operator_actions (call_sid);
