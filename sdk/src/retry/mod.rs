//! The task/flow retry engine (being written).
