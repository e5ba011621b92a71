// What makes a username, a user password and a host id acceptable (API.md §6).
import { ApiError } from "./http";
import { HOST_PASSWORD_MIN_LENGTH } from "./passwords";

export const USER_PASSWORD_MIN_LENGTH = 5;
// Long enough for any real email address; keeps the enrolment QR code easy to scan.
export const USERNAME_MAX_LENGTH = 128;
const USERNAME = /^[a-z0-9.-]{3,}$/;
const EMAIL = /^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$/;
const HOST_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export function checkNewUser(username: string, password: string): void {
  if (username.length > USERNAME_MAX_LENGTH || (!USERNAME.test(username) && !EMAIL.test(username))) {
    throw new ApiError(400, "invalid username: use 3 to 128 of a-z, 0-9, '-' and '.', or an email address");
  }
  if (password.length < USER_PASSWORD_MIN_LENGTH) {
    throw new ApiError(400, `password must be at least ${USER_PASSWORD_MIN_LENGTH} characters`);
  }
}

export function checkNewHost(id: string, password: string | undefined): void {
  if (!HOST_ID.test(id)) throw new ApiError(400, "invalid host id: use 1 to 128 of A-Z, a-z, 0-9, '.', '_', ':' and '-'");
  if (password !== undefined && password.length < HOST_PASSWORD_MIN_LENGTH) {
    throw new ApiError(400, `host password must be at least ${HOST_PASSWORD_MIN_LENGTH} characters`);
  }
}
