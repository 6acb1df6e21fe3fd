package wake

import "testing"

func TestSignal_CallsFoldIntoOneAndNeverBlock(t *testing.T) {
	var s Signal
	select {
	case <-s.C():
		t.Fatal("woken before any call")
	default:
	}
	s.Notify()
	s.Notify() // the worker is busy: must not block, and folds into the pending call
	select {
	case <-s.C():
	default:
		t.Fatal("a call was made, but the worker is not woken")
	}
	select {
	case <-s.C():
		t.Fatal("two calls while busy woke the worker twice")
	default:
	}
}
